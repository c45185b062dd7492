package node

// Temporary aliases of node/api's names while node/daemon moves to it; removed when it has.

import "github.com/meshnode/meshnode/node/api"

const APIFile = api.APIFile
const MaxBodyBytes = api.MaxBodyBytes
const MaxImportBytes = api.MaxImportBytes
const PathBlobCat = api.PathBlobCat
const PathBlobFetch = api.PathBlobFetch
const PathBlobGC = api.PathBlobGC
const PathBlobPin = api.PathBlobPin
const PathBlobPut = api.PathBlobPut
const PathBlobUnpin = api.PathBlobUnpin
const PathDistill = api.PathDistill
const PathExpertEval = api.PathExpertEval
const PathExpertExport = api.PathExpertExport
const PathExpertFetch = api.PathExpertFetch
const PathExpertImport = api.PathExpertImport
const PathExpertInspect = api.PathExpertInspect
const PathExpertTrain = api.PathExpertTrain
const PathExperts = api.PathExperts
const PathGenerate = api.PathGenerate
const PathID = api.PathID
const PathMarketBalance = api.PathMarketBalance
const PathMarketBook = api.PathMarketBook
const PathMarketBuy = api.PathMarketBuy
const PathMarketGrant = api.PathMarketGrant
const PathMarketHistory = api.PathMarketHistory
const PathMarketImport = api.PathMarketImport
const PathMarketListings = api.PathMarketListings
const PathMarketPublish = api.PathMarketPublish
const PathMarketRefused = api.PathMarketRefused
const PathMarketReview = api.PathMarketReview
const PathMarketUnlist = api.PathMarketUnlist
const PathMetrics = api.PathMetrics
const PathPeers = api.PathPeers
const PathQuery = api.PathQuery
const PathRemote = api.PathRemote
const PathRoutes = api.PathRoutes
const PathServe = api.PathServe
const PathStatus = api.PathStatus
const PathTrainJobs = api.PathTrainJobs
const PathTrainJoin = api.PathTrainJoin
const PathTrainLeave = api.PathTrainLeave
const PathTrainStart = api.PathTrainStart
const PathUnserve = api.PathUnserve
const PathValidate = api.PathValidate
const TokenFile = api.TokenFile

var APIErrors = api.APIErrors
var AbsDataset = api.AbsDataset
var AbsDistillPaths = api.AbsDistillPaths
var AbsPaths = api.AbsPaths
var DaemonClient = api.DaemonClient
var IsWeightsFile = api.IsWeightsFile
var KindOf = api.KindOf
var ParseCID = api.ParseCID

func ResultEvent[P, R any](rep *R, err error) api.JobEvent[P, R] { return api.ResultEvent[P](rep, err) }

var WriteErrorTable = api.WriteErrorTable

type APIError = api.APIError
type BalanceInfo = api.BalanceInfo
type BlobInfo = api.BlobInfo
type BlobPutRequest = api.BlobPutRequest
type BookKey = api.BookKey
type BookView = api.BookView
type BuyRequest = api.BuyRequest
type BuyResult = api.BuyResult
type CIDRequest = api.CIDRequest
type CallError = api.CallError
type ClassScore = api.ClassScore
type Client = api.Client
type DistillRequest = api.DistillRequest
type DistillResult = api.DistillResult
type ErrorKind = api.ErrorKind
type EvalReport = api.EvalReport
type EvalRequest = api.EvalRequest
type ExpertImportRequest = api.ExpertImportRequest
type ExportReport = api.ExportReport
type ExportRequest = api.ExportRequest
type FetchEvent = api.FetchEvent
type FetchProgress = api.FetchProgress
type GCReport = api.GCReport
type GenerateProgress = api.GenerateProgress
type GenerateRequest = api.GenerateRequest
type GenerateResult = api.GenerateResult
type GrantRequest = api.GrantRequest
type HistoryItem = api.HistoryItem
type HostedExpert = api.HostedExpert
type IDInfo = api.IDInfo
type ImportOptions = api.ImportOptions
type ImportReport = api.ImportReport
type ImportRequest = api.ImportRequest
type ImportResult = api.ImportResult
type InspectReport = api.InspectReport
type JobEvent[P, R any] = api.JobEvent[P, R]
type KindError = api.KindError
type ListingView = api.ListingView
type PeerInfo = api.PeerInfo
type PublishRequest = api.PublishRequest
type QueryAnswer = api.QueryAnswer
type QueryRequest = api.QueryRequest
type RefusedKey = api.RefusedKey
type ReviewRequest = api.ReviewRequest
type ReviewView = api.ReviewView
type ServeRequest = api.ServeRequest
type StatusInfo = api.StatusInfo
type StoreOps = api.StoreOps
type StudentSettings = api.StudentSettings
type TrainEvent = api.TrainEvent
type TrainJobInfo = api.TrainJobInfo
type TrainJoinRequest = api.TrainJoinRequest
type TrainParticipation = api.TrainParticipation
type TrainReport = api.TrainReport
type TrainRequest = api.TrainRequest
type TrainStartRequest = api.TrainStartRequest
type UnlistRequest = api.UnlistRequest
type ValidateProgress = api.ValidateProgress
type ValidateRequest = api.ValidateRequest

var ErrBadRequest = api.ErrBadRequest
var ErrInternal = api.ErrInternal
var ErrInterrupted = api.ErrInterrupted
var ErrNoDaemon = api.ErrNoDaemon
var ErrNotFound = api.ErrNotFound
var ErrUnauthorized = api.ErrUnauthorized
var ErrUnavailable = api.ErrUnavailable

type BlobPutProgress = api.BlobPutProgress
